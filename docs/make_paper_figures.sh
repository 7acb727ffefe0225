#!/bin/sh
# Make the figures of docs/paper.md from the bundled examples:
#   docs/images/paper-reconstructions.png  (the paper's figure 1)
#   docs/images/paper-grid.png             (the paper's figure 3)
# Run from the repository root: `sh docs/make_paper_figures.sh`. The sheets are made in build/
# (ignored by git), where their cells are cached: interrupted, the script resumes where it stopped.
set -e
IMPASTO="${IMPASTO:-.venv/bin/impasto}"
WORK=build/paper-figures
mkdir -p "$WORK" docs/images

# Figure 1: content reconstructions of the photo, style reconstructions of the painting.
"$IMPASTO" figure reconstructions examples/tubingen.jpg --style examples/starry_night.jpg \
    --size 128 --iterations 100 --line-search -o "$WORK/paper-reconstructions.png"

# Figure 3: style-layer subsets x alpha/beta. At 128 px the content loss (a sum over positions)
# weighs ~16x less than at 512 px, so the paper's columns 1e-5 ... 1e-2 are shifted by 10x.
"$IMPASTO" figure grid examples/tubingen.jpg examples/starry_night.jpg \
    --size 128 --iterations 60 --line-search --ratios 1e-4,1e-3,1e-2,1e-1 -o "$WORK/paper-grid.png"

cp "$WORK/paper-reconstructions.png" "$WORK/paper-grid.png" docs/images/
chmod 644 docs/images/paper-reconstructions.png docs/images/paper-grid.png
