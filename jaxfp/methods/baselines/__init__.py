"""Baselines every paper compares against: kNN/WkNN (`knn`) and the MLP regressor (`mlp`)."""
