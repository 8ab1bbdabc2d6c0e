#!/usr/bin/env bash
# The lesson's whole restoration chain: generator -> its outputs -> critic -> GAN.
#   bash scripts/restore_chain.sh PHOTOS_DIR [ENCODER_WEIGHTS] [LPIPS_WEIGHTS]
# PHOTOS_DIR: a folder of good photos; ENCODER_WEIGHTS: 'imagenet' (default, downloads) or a
# local MobileNetV2 state dict; LPIPS_WEIGHTS: AlexNet's for val/lpips, by which the GAN keeps its
# best checkpoint: 'imagenet' (default, downloads) or a local state dict. Extra options for every
# step can follow in LESSON7_OPTS.
set -euo pipefail
photos=${1:?usage: restore_chain.sh PHOTOS_DIR [ENCODER_WEIGHTS] [LPIPS_WEIGHTS]}
weights=${2:-imagenet}
lpips=${3:-imagenet}
opts=(${LESSON7_OPTS:-})
cd "$(dirname "$0")/.."

python cli.py fit --config configs/restore_generator.yaml --data.data_dir "$photos" \
    --model.encoder_weights "$weights" --model.lpips_weights "$lpips" "${opts[@]}"
# The crappified photos that the generator trained on, restored, for the critic to judge.
damaged=$(python -c "
from datamodules.restoration import RestorationDataModule
print(RestorationDataModule(data_dir='$photos').damaged_dir)")
python cli.py predict --config configs/restore_generator.yaml \
    --data.predict_dir "$damaged" --ckpt_path lightning_logs/restore_generator/checkpoints/last.ckpt "${opts[@]}"
python cli.py fit --config configs/restore_critic.yaml --data.real_dir "$photos" "${opts[@]}"
python cli.py fit --config configs/restore_gan.yaml --data.data_dir "$photos" --model.lpips_weights "$lpips" "${opts[@]}"
