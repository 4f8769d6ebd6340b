"""Pretrain an encoder without labels and evaluate it with a fraction of them.

python train.py method=vicreg backbone=resnet50 label_frac=0.05
python train.py -m +experiment=label_efficiency dataset=pneumoniamnist

The same as the installed `medssl-train` (src/medssl/cli/train.py); configs in conf/.
"""

from medssl.cli.train import main

if __name__ == "__main__":
    main()
