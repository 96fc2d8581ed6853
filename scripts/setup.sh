#!/usr/bin/env bash
# One idempotent setup step for the non-ROS install (simulation, training, tests).
#  - Debian packages FARL needs (offscreen MuJoCo, RealSense USB, OpenCV runtime)
#  - .venv with every src/ package installed editable and third-party packages pinned
#  - ROS 2: where none is sourced (no ROS_DISTRO), ROS 2 Kilted from PyPI wheels
#    (requirements-ros.txt) into .venv; where one is (Humble/Jazzy from apt), that one, no wheels.
#    Then farl_interfaces built with colcon into .venv and .venv/farl-ros.env written
#    (scripts/ros_setup.py says why each step is needed).
# Re-running is cheap: pip runs only when requirements, constraints or a package manifest changed,
# and colcon only when an interface definition changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
# cmake, g++, make: the colcon + rosidl build of farl_interfaces
APT_PACKAGES=(libosmesa6 libusb-1.0-0 libgl1 libglib2.0-0 cmake g++ make)

need_apt=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else SUDO="none"; fi
  if [ "$SUDO" = none ]; then
    echo "setup: missing Debian packages ${need_apt[*]}; install them as root: apt-get install -y ${need_apt[*]}" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${need_apt[*]}"
  $SUDO apt-get install -y --no-install-recommends "${need_apt[@]}" >/dev/null 2>&1 \
    || { $SUDO apt-get update -qq && $SUDO apt-get install -y --no-install-recommends "${need_apt[@]}"; }
fi

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || { echo "setup: FARL needs Python >= 3.10, found $("$PYTHON" --version); set PYTHON=python3.11" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV with $("$PYTHON" --version)"
  "$PYTHON" -m venv "$VENV"
fi
# colcon would otherwise crawl the venv's site-packages looking for packages.
touch "$VENV/COLCON_IGNORE"

ros_requirements=()
if [ -z "${ROS_DISTRO:-}" ]; then ros_requirements=(-r requirements-ros.txt); fi
stamp="$VENV/.farl-setup-stamp"
digest=$( (echo "ros=${ROS_DISTRO:-wheels}"; cat requirements.txt requirements-ros.txt constraints.txt \
  src/*/setup.py src/*/setup.cfg src/*/package.xml 2>/dev/null) | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  echo "setup: installing Python packages into $VENV (pinned by constraints.txt${ROS_DISTRO:+; ROS 2 $ROS_DISTRO as sourced})"
  editables=()
  for pkg in src/*/setup.py; do editables+=(-e "$(dirname "$pkg")"); done
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    -c constraints.txt -r requirements.txt "${ros_requirements[@]}" setuptools "${editables[@]}"
  echo "$digest" > "$stamp"
fi
# The ROS wheels' bootstrapper would re-exec this python once; the guard skips that (ros_setup.py).
_ROS_WHEELS_BOOTSTRAP_COMPLETE=1 "$VENV/bin/python" scripts/ros_setup.py --venv "$VENV"
