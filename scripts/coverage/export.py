#!/usr/bin/env python3
"""Export the 20 torchvision classifier families to ONNX for the coverage table (README, "Model
coverage"). Random weights (seeded), eval mode, one fixed input; torch's logits for that input are
saved beside each model, so `scripts/coverage/run.ts` can check the engine's logits against them.

    /usr/bin/python3 scripts/coverage/export.py [--out .cache/torchvision] [--only a,b] [--force]

Writes OUT/<family>-op<opset>.onnx, OUT/<family>-input.npy (float32, NCHW, batch 1) and
OUT/<family>-logits.npy (float32 [1, 1000]). Every family at opset 17, 224x224 (inception_v3 at
299x299); vit_b_16 also at opset 14 (LayerNorm decomposed, as older exporters write it).
Development tool only: needs torch and torchvision (Debian's python3-torch 1.13 and
python3-torchvision 0.14 were used); the exports are large and never committed.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
import torchvision

# family -> (input side, opsets)
FAMILIES = {
    "alexnet": (224, [17]),
    "vgg11_bn": (224, [17]),
    "resnet18": (224, [17]),
    "resnext50_32x4d": (224, [17]),
    "wide_resnet50_2": (224, [17]),
    "squeezenet1_1": (224, [17]),
    "densenet121": (224, [17]),
    "googlenet": (224, [17]),
    "inception_v3": (299, [17]),
    "shufflenet_v2_x1_0": (224, [17]),
    "mobilenet_v2": (224, [17]),
    "mobilenet_v3_small": (224, [17]),
    "mnasnet0_5": (224, [17]),
    "efficientnet_b0": (224, [17]),
    "efficientnet_v2_s": (224, [17]),
    "regnet_x_400mf": (224, [17]),
    "regnet_y_400mf": (224, [17]),
    "convnext_tiny": (224, [17]),
    "vit_b_16": (224, [17, 14]),
    "swin_t": (224, [17]),
}


def build(family: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    kwargs = {"weights": None}
    if family in ("googlenet", "inception_v3"):
        # the auxiliary classifiers only run in training mode; leaving them out keeps the export small
        kwargs["aux_logits"] = False
        kwargs["init_weights"] = True
    model = getattr(torchvision.models, family)(**kwargs)
    randomize_zero_params(model)
    calibrate_batchnorm(model, side=FAMILIES[family][0], seed=seed)
    return model.eval()


def calibrate_batchnorm(model: torch.nn.Module, side: int, seed: int, batches: int = 1, size: int = 4) -> None:
    """Freshly initialised BatchNorm layers hold running mean 0 and variance 1, so in eval mode they
    normalise nothing: through a deep random network the activations vanish (efficientnet_b0's logits
    are 1e-14, googlenet's features 1e-30) or explode (inception_v3's logits 1e12), and there is
    nothing meaningful to explain or to compare. The running statistics are set to the batch
    statistics of a few random normal inputs instead (the cumulative average, momentum None), as a
    trained network's would be set by its data."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    gen = torch.Generator().manual_seed(seed + 1)
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.randn(size, 3, side, side, generator=gen))
    model.eval()


def randomize_zero_params(model: torch.nn.Module) -> None:
    """torchvision initialises some parameters to zeros: ViT's head weight (so every logit would be
    the bias, 0, and there would be nothing to explain) and its class token. Those get small random
    values instead; biases (1-D) stay as initialised."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2 and not p.any():
                fan_in = p[0].numel() if p.dim() == 2 else p.shape[-1]
                p.normal_(0.0, fan_in ** -0.5)


def export(family: str, out: str, force: bool) -> None:
    side, opsets = FAMILIES[family]
    seed = sum(map(ord, family))  # per family, stable across runs
    model = build(family, seed)
    gen = torch.Generator().manual_seed(1234)
    x = torch.randn(1, 3, side, side, generator=gen)
    with torch.no_grad():
        logits = model(x)
    np.save(os.path.join(out, f"{family}-input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(out, f"{family}-logits.npy"), logits.numpy().astype(np.float32))
    for opset in opsets:
        path = os.path.join(out, f"{family}-op{opset}.onnx")
        if os.path.exists(path) and not force:
            print(f"{family} opset {opset}: {path} exists", flush=True)
            continue
        t0 = time.time()
        tmp = path + ".tmp"
        torch.onnx.export(
            model,
            (x,),
            tmp,
            opset_version=opset,
            input_names=["input"],
            output_names=["logits"],
            do_constant_folding=True,
        )
        os.replace(tmp, path)
        mb = os.path.getsize(path) / 2**20
        print(f"{family} opset {opset}: {path} ({mb:.1f} MB) in {time.time() - t0:.1f} s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=".cache/torchvision")
    ap.add_argument("--only", default="")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(FAMILIES)
    bad = [n for n in names if n not in FAMILIES]
    if bad:
        sys.exit(f"export.py: unknown families {bad}; known: {', '.join(FAMILIES)}")
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}", flush=True)
    failed = []
    for name in names:
        try:
            export(name, args.out, args.force)
        except Exception as e:  # keep going: the table reports the failure
            print(f"{name}: export FAILED: {type(e).__name__}: {e}", flush=True)
            failed.append(name)
    if failed:
        sys.exit(f"export.py: failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
