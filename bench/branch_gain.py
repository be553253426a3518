"""How much the default model's control branches lower its flow-matching loss.

    python bench/branch_gain.py [--workdir .trainset] [--model model/default_model] [--batch 32]

Reads the training clips ``cosmos-bridge train-default`` packed (clips.npz in --workdir;
``train-default --build-only`` makes them) and prints, per noise level, the loss of the
base alone, with each branch alone and with all four at equal weights, on one batch of
training clips. Controls that steer the output make the loss fall, most at high noise,
where the base must guess the layout.
"""

from __future__ import annotations

import argparse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIGMAS = [0.1, 0.3, 0.5, 0.7, 0.9]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=REPO / ".trainset")
    parser.add_argument("--model", type=Path, default=REPO / "model/default_model")
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()

    import torch

    from bridge_core.train.command import CLIPS_FILE, clip_set
    from bridge_core.train.data import load_packed
    from bridge_core.trainset.conditions import CONDITIONS
    from transfer_model.cosmos.configs import MODEL_PRESETS
    from transfer_model.cosmos.loading import load_transfer_model
    from transfer_model.cosmos.training import control_gain, encode_set

    packed = load_packed(args.workdir / CLIPS_FILE)
    width = MODEL_PRESETS["default"].text_embed_dim
    clips = clip_set(packed, [CONDITIONS[c].prompt for c in packed.conditions], width)
    model = load_transfer_model(args.model, device="cpu", dtype=torch.float32)
    encoded = encode_set(model.vae, clips, torch.device("cpu"))
    gains = control_gain(model.transformer, model.branches, encoded, clips, SIGMAS, args.batch)

    names = list(next(iter(gains.values())))
    print(f"flow loss on {args.batch} training clips ({args.model.name}), lower is better")
    print(f"{'sigma':>6s}" + "".join(f"{n:>9s}" for n in names) + f"{'all/base':>10s}")
    for sigma, losses in gains.items():
        ratio = losses["all"] / losses["base"]
        print(f"{sigma:6.1f}" + "".join(f"{losses[n]:9.4f}" for n in names) + f"{ratio:10.2f}")


if __name__ == "__main__":
    main()
