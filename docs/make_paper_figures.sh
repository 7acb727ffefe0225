#!/bin/sh
# Make the README figures of docs/readme-paper.md from the bundled examples:
#   docs/images/paper-reconstructions.png  (the paper's figure 1)
#   docs/images/paper-grid.png             (the paper's figure 3)
# Run from the repository root: `sh docs/make_paper_figures.sh`. Interrupted, it resumes where it
# stopped (the sheets' cells are cached beside them); the caches are removed once both are made.
set -e
IMPASTO="${IMPASTO:-.venv/bin/impasto}"
OUT=docs/images
mkdir -p "$OUT"

# Figure 1: content reconstructions of the photo, style reconstructions of the painting.
"$IMPASTO" figure reconstructions examples/tubingen.jpg --style examples/starry_night.jpg \
    --size 128 --iterations 200 -o "$OUT/paper-reconstructions.png"

# Figure 3: style-layer subsets x alpha/beta. At 128 px the content loss (a sum over positions)
# weighs ~16x less than at 512 px, so the paper's columns 1e-5 ... 1e-2 are shifted by 10x.
"$IMPASTO" figure grid examples/tubingen.jpg examples/starry_night.jpg \
    --size 128 --iterations 120 --ratios 1e-4,1e-3,1e-2,1e-1 -o "$OUT/paper-grid.png"

rm -rf "$OUT/paper-reconstructions.png.cells" "$OUT/paper-grid.png.cells"
