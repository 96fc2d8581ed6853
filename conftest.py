"""Root conftest: loaded by pytest in every process (each xdist worker) before any test module.

torch's optimisers import torch._dynamo, which loads triton's native library.  In an xdist
worker that had already imported franky-sim's pinocchio/coal stack (and CUDA bindings), that
import segfaulted (seen once, in test_offline's Adam set-up); a clean process that imports it
first never did.  Importing it here, before any test, gives every worker that order.
"""

import torch._dynamo  # noqa: F401
