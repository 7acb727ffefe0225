"""``impasto video``: a clip stylised frame by frame without flicker, its sound kept. The modules, in
the order of the data flow:

- :mod:`.frames` — the clip in and out: any video FFmpeg decodes (through PyAV), animated GIF and
  WebP (Pillow) or a folder of numbered frames -> RGB frames, frame rate and audio; and back, atomically
- :mod:`.flow`   — optical flow between consecutive frames, its reliability, warping (OpenCV)
- :mod:`.job`    — the stylisation itself: optimisation with a temporal loss or a trained network
  blended along the flow, finished frames kept so a stopped run goes on where it stopped

PyAV and OpenCV are optional: ``pip install 'impasto[video]'``.
"""
