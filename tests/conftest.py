import os

os.environ.setdefault("ARLAB_BUDGET", "smoke")
os.environ.setdefault("MPLBACKEND", "Agg")
# Kernels and graders started by the tests inherit this: one thread each on a shared machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

# Two pytest workers share two cores: one thread each keeps them from fighting.
torch.set_num_threads(1)
