"""Ray-traced CSI data sets with Sionna RT (CSI positioning paper §II-B); writes jaxfp's CSI format."""

import os

_DEBIAN_LLVM = "/usr/lib/x86_64-linux-gnu/libLLVM.so.19.1"

# Dr.Jit's CPU backend aborts with the preinstalled LLVM 15 ("Cannot select ... fminimum"); Debian's
# LLVM 19 works. Set before anything imports drjit, which every datagen entry point goes through.
if "DRJIT_LIBLLVM_PATH" not in os.environ and os.path.exists(_DEBIAN_LLVM):
    os.environ["DRJIT_LIBLLVM_PATH"] = _DEBIAN_LLVM
