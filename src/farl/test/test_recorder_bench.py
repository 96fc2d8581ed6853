"""`farl bench recorder` at a toy length: the recorder node (its own process) records every topic it is sent,
camera included, and the bag builds. The figures themselves are BENCHMARKS.md's (a loaded test machine drops)."""

from __future__ import annotations

from farl.recorder_bench_node import bench_recorder


def test_the_recorder_bench_records_every_topic_and_builds() -> None:
    results = bench_recorder(seconds=3.0, camera_every=3, progress=False)
    for run in ("no_camera", "camera"):
        topics = results[run]["topics"]
        assert all(0 < t["recorded"] <= t["published"] for t in topics.values()), topics
    color = results["camera"]["topics"]["/camera/camera/color/image_raw"]
    assert color["recorded"] <= -(-color["published"] // 3)       # camera_every: every third frame at most
    assert color["recorded"] >= color["published"] // 3 - 3       # (a loaded machine may drop a few)
    assert results["camera"]["recorded_mb_per_s"] > 5 * results["no_camera"]["recorded_mb_per_s"]
    assert results["build"]["steps"] >= 10 and results["build"]["build_s_per_recorded_hour"] > 0
