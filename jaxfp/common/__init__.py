"""The shared layer beneath everything: small pieces several rooms need. Imports nothing of ours.

atomic_files (write-then-rename), neighbours (distances, IDW interpolation), chunks (fixed-size padded
chunks through a compiled function), rss_scale (the RSS + 120 dB scale), geometry (rotation about a
site, position scaling, grid cells).
"""
