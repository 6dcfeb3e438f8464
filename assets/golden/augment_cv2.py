"""Golden values for rensa-augment's CPU kernels, computed with OpenCV (the library
albumentations runs on) on a small smooth RGB image.

    .venv-peers/bin/python assets/golden/augment_cv2.py > assets/golden/augment_cv2.json

Conventions that match rensa's: pixel centres at integer coordinates, resize with half-pixel
alignment (INTER_LINEAR), affine warps given as the output -> input map (WARP_INVERSE_MAP),
blur borders BORDER_REFLECT_101 with a kernel of radius ceil(3 sigma)."""
import json
import math

import cv2
import numpy as np

h, w = 20, 24
y, x = np.mgrid[0:h, 0:w].astype(np.float64)
img = np.stack(
    [
        120 + 100 * np.sin(x / 5.0) * np.cos(y / 7.0),
        90 + 80 * np.cos((x + y) / 6.0),
        60 + 5 * x + 3 * y,
    ],
    axis=-1,
)
img = np.clip(np.round(img), 0, 255).astype(np.uint8)

cases = []
resized = cv2.resize(img, (17, 13), interpolation=cv2.INTER_LINEAR)
cases.append({"name": "resize 17x13 bilinear", "pipeline": {"op": "resize", "width": 17, "height": 13}, "expected": resized})
up = cv2.resize(img, (37, 29), interpolation=cv2.INTER_LINEAR)
cases.append({"name": "resize 37x29 bilinear", "pipeline": {"op": "resize", "width": 37, "height": 29}, "expected": up})
sigma = 1.2
r = math.ceil(3 * sigma)
blurred = cv2.GaussianBlur(img, (2 * r + 1, 2 * r + 1), sigma, borderType=cv2.BORDER_REFLECT_101)
cases.append({"name": "gaussian blur sigma 1.2", "op": {"op": "blur", "sigma": sigma}, "expected": blurred})
inverse = np.array([[0.9, -0.3, 4.0], [0.25, 1.05, -2.5]])
warped = cv2.warpAffine(img, inverse, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
cases.append({"name": "affine, constant border", "op": {"op": "affine", "inverse": inverse.flatten().tolist(),
              "interp": "bilinear", "border": {"constant": 0}}, "expected": warped})
reflected = cv2.warpAffine(img, inverse, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REFLECT_101)
cases.append({"name": "affine, reflect border", "op": {"op": "affine", "inverse": inverse.flatten().tolist(),
              "interp": "bilinear", "border": "reflect"}, "expected": reflected})
cases.append({"name": "horizontal flip", "op": {"op": "horizontal_flip"}, "expected": cv2.flip(img, 1)})
cases.append({"name": "rot90 k=1", "op": {"op": "rot90", "k": 1}, "expected": np.ascontiguousarray(np.rot90(img, 1))})
padded = cv2.copyMakeBorder(img, 2, 3, 4, 1, cv2.BORDER_REFLECT_101)
cases.append({"name": "pad reflect", "op": {"op": "pad", "left": 4, "top": 2, "right": 1, "bottom": 3, "border": "reflect"}, "expected": padded})
gray = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
cases.append({"name": "grayscale", "op": {"op": "grayscale"}, "expected": gray})

def enc(a):
    return {"height": int(a.shape[0]), "width": int(a.shape[1]), "data": a.reshape(-1).astype(int).tolist()}

print(json.dumps({
    "opencv": cv2.__version__,
    "input": enc(img),
    "cases": [{k: (enc(v) if k == "expected" else v) for k, v in c.items()} for c in cases],
}))
