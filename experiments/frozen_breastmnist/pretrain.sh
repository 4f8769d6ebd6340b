#!/bin/bash
cd /work/main
export MEDMNIST_ROOT=/work/shared/data/medmnist OMP_NUM_THREADS=1
exec .venv/bin/python train.py method=simclr backbone=smallcnn dataset=pneumoniamnist \
  trainer.epochs=10 trainer.device=cpu trainer.precision=fp32 'eval=[linear]' \
  eval_outputs.figures=false cache.enabled=false hydra.run.dir=/tmp/frozen_exp/pretrain_pneumonia
