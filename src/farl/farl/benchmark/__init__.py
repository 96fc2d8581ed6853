"""`farl bench failurebench`: the paper's FailureBench tables and plots, reproduced at a chosen budget.

pretrain.py  per task: demonstrations (Minari), offline task/recovery policies, failure demos from
             the pretrained policy, world model, Q-risk critic, calibrated thresholds, references
methods.py   Uni-O4, FARL, Rec-RL, MPPI, PPO-Lagrangian: how each builds its online fine-tuner
grid.py      the resumable (task x method x seed) grid over worker processes
report.py    results.csv, summary.json, tables.md and the PNG plots
"""
