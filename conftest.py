"""Root conftest: loaded by pytest in every process (each xdist worker) before any test module.

Once a process has made a MuJoCo GL context (Mesa, for MUJOCO_GL=egl or osmesa), a later
`import torch._dynamo` (every torch optimiser does it) segfaults: Mesa's LLVM and triton's clash
(`mujoco.GLContext(64, 64).make_current(); import triton` exits with 139; the other order is fine).
Product code guards its own GL contexts (farl_sim.franka_scenes.camera.load_torch_compiler_before_gl);
tests also render through MuJoCo directly, so every worker imports it first, here.
"""

import torch._dynamo  # noqa: F401
