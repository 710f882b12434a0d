"""Ray-traced CSI data sets with Sionna RT (CSI positioning paper §II-B); writes jaxfp's CSI format."""
