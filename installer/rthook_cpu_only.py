# PyInstaller runtime hook of the CPU bundle made from the CUDA build of torch: it holds only the CUDA libraries that
# torch needs in order to load, not those a GPU run needs (cuDNN's engines, ...). Hide every GPU from torch, so that
# ``--device auto`` picks the CPU even on a machine with an NVIDIA GPU and driver. Runs before any app code.
import os

os.environ["CUDA_VISIBLE_DEVICES"] = ""
