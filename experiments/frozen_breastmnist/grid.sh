#!/bin/bash
# The frozen BreastMNIST rows (and the random-init floor of the same CNN), fp32 on this CPU.
cd /tmp/frozen_exp
export MEDMNIST_ROOT=/work/shared/data/medmnist OMP_NUM_THREADS=1
COMMON="backbone=smallcnn dataset=breastmnist label_frac=0.01,0.05,0.1,1.0 seed=0,1,2 eval=[linear,knn,finetune] trainer.device=cpu trainer.precision=fp32 hydra.sweep.dir=multirun/frozen_breastmnist cache.dir=encoders"
/work/main/.venv/bin/python /work/main/train.py -m method=frozen backbone.weights=pneumonia_simclr.pt $COMMON
/work/main/.venv/bin/python /work/main/train.py -m method=random $COMMON
