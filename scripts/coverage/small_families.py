#!/usr/bin/env python3
"""Small versions of the transformer-era torchvision families for `npm test`
(test/fixtures/small-families/, see its README): torchvision's own classes with narrow widths and
few blocks, random weights (seeded), eval mode, exported to ONNX, with one fixed input and torch's
logits for it.

    /usr/bin/python3 scripts/coverage/small_families.py [--out test/fixtures/small-families]

- vit:      VisionTransformer, 32x32 input, patch 8, 2 layers, 2 heads, width 32 (opset 17: the
            LayerNormalization op; opset 14: LayerNorm decomposed into ReduceMean/Sub/Pow/Sqrt/Div).
- swin:     SwinTransformer, 40x40 input, patch 4, window 4, depths [2, 2], widths 16/32: the
            10x10 token grid is padded to 12x12 (a Pad computed from shapes), the second block of
            each stage shifts its windows (torch.roll, exported as Slice/Concat pairs) under an
            attention mask, patch merging pads the odd 5x5 grid and slices with step 2.
- convnext: ConvNeXt, 32x32 input, stages 16 -> 32 with one block each (LayerNorm over channels
            written as Permute, LayerNorm, Permute; layer scale).
Parameters that torchvision initialises to constants (LayerNorm's 1 and 0, ConvNeXt's layer scale
1e-6, ViT's zero head and class token) get random values, so every part of the graph matters.
"""
import argparse
import json
import os

import numpy as np
import torch
from torchvision.models import convnext, swin_transformer, vision_transformer

MODELS = {
    "vit": (32, [17, 14]),
    "swin": (40, [17]),
    "convnext": (32, [17]),
}


def make(name: str) -> torch.nn.Module:
    if name == "vit":
        return vision_transformer.VisionTransformer(
            image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=10
        )
    if name == "swin":
        return swin_transformer.SwinTransformer(
            patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 4], window_size=[4, 4],
            stochastic_depth_prob=0.0, num_classes=10,
        )
    if name == "convnext":
        setting = [convnext.CNBlockConfig(16, 32, 1), convnext.CNBlockConfig(32, None, 1)]
        return convnext.ConvNeXt(setting, stochastic_depth_prob=0.0, num_classes=10)
    raise ValueError(name)


def randomize_constants(model: torch.nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        norms = {id(p) for m in model.modules() if isinstance(m, torch.nn.LayerNorm) for p in m.parameters()}
        for pname, p in model.named_parameters():
            if id(p) in norms:
                if pname.endswith("weight"):
                    p.copy_(0.5 + torch.rand(p.shape, generator=gen))
                else:
                    p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif "layer_scale" in pname:
                p.copy_(0.2 + 0.8 * torch.rand(p.shape, generator=gen))
            elif not p.any():
                fan_in = p[0].numel() if p.dim() >= 2 else p.numel()
                p.copy_(torch.randn(p.shape, generator=gen) * fan_in ** -0.5)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="test/fixtures/small-families")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    manifest = {"tolerance": {"logitRel": 1e-4}, "models": []}
    for i, (name, (side, opsets)) in enumerate(MODELS.items()):
        torch.manual_seed(100 + i)
        model = make(name)
        randomize_constants(model, torch.Generator().manual_seed(200 + i))
        model.eval()
        x = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(300 + i))
        with torch.no_grad():
            logits = model(x)
        np.save(os.path.join(args.out, f"{name}-input.npy"), x.numpy().astype(np.float32))
        np.save(os.path.join(args.out, f"{name}-logits.npy"), logits.numpy().astype(np.float32))
        for opset in opsets:
            file = f"{name}-op{opset}.onnx"
            torch.onnx.export(model, (x,), os.path.join(args.out, file), opset_version=opset,
                              input_names=["input"], output_names=["logits"], do_constant_folding=True)
            manifest["models"].append({
                "id": f"{name}-op{opset}", "model": file, "input": f"{name}-input.npy",
                "logits": f"{name}-logits.npy", "inputSize": side, "opset": opset,
                "params": sum(p.numel() for p in model.parameters()),
            })
            print(f"{file}: {os.path.getsize(os.path.join(args.out, file)) / 1024:.0f} KiB", flush=True)
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
