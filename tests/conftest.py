import os

os.environ.setdefault("ARLAB_BUDGET", "smoke")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402

# Two pytest workers share two cores: one thread each keeps them from fighting.
torch.set_num_threads(1)
