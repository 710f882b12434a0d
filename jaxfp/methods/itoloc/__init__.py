"""iToLoc: domain-adversarial localization with a co-training model update (Li et al.)."""
