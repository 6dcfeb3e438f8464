"""Peer of `cargo xtask bench augment`: albumentations (OpenCV) single-thread throughput per
transform on one 256x256 RGB u8 image, the same operation set and parameter ranges as rensa's
side of the benchmark (see xtask/src/bench/augment.rs).

usage: albumentations_augment.py IMAGE.png N RUNS
Prints one JSON line: {"peer": ..., "img_per_s": {name: median images/s}}."""
import json
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
import cv2  # noqa: E402

cv2.setNumThreads(1)
import albumentations as A  # noqa: E402

path, n, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
img = cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
assert img.shape == (256, 256, 3), img.shape

tfs = {
    "horizontal_flip": A.HorizontalFlip(p=1),
    "vertical_flip": A.VerticalFlip(p=1),
    "rotate(+-30)": A.Rotate(limit=30, p=1),
    "affine(shift,scale,rot)": A.Affine(translate_percent=0.1, scale=(0.9, 1.1), rotate=(-15, 15), p=1),
    "random_crop(224)": A.RandomCrop(224, 224, p=1),
    "random_resized_crop(224)": A.RandomResizedCrop(size=(224, 224), p=1),
    "brightness_contrast": A.RandomBrightnessContrast(p=1),
    "color_jitter": A.ColorJitter(p=1),
    "hue_saturation_value": A.HueSaturationValue(p=1),
    "gaussian_blur": A.GaussianBlur(p=1),
    "gaussian_noise": A.GaussNoise(p=1),
    "erasing": A.CoarseDropout(p=1),
    "normalize": A.Normalize(p=1),
    "pipeline(flip+affine+jitter+normalize)": A.Compose(
        [A.HorizontalFlip(), A.Affine(translate_percent=0.1, rotate=(-15, 15)), A.ColorJitter(), A.Normalize()]
    ),
}
res = {}
for name, t in tfs.items():
    for _ in range(20):
        t(image=img)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(n):
            t(image=img)
        times.append(n / (time.perf_counter() - t0))
    res[name] = statistics.median(times)
    print(f"{name}\t{res[name]:.0f} img/s", file=sys.stderr, flush=True)
print(json.dumps({"peer": f"albumentations {A.__version__} / OpenCV {cv2.__version__}", "img_per_s": res}))
