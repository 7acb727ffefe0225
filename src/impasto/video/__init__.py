"""``impasto video``: a clip stylised frame by frame without flicker, its sound kept. The modules, in
the order of the data flow:

- :mod:`.read`     — the clip in: any video FFmpeg decodes (through PyAV), animated GIF, WebP and
  PNG (Pillow) or a folder of numbered frames -> RGB frames, frame rate and audio; and the one set
  of checks a clip passes, which ``impasto serve`` also runs on an upload (:func:`.read.probe_clip`)
- :mod:`.flow`     — optical flow between consecutive frames, its reliability, warping (OpenCV)
- :mod:`.cache`    — the frames of a job: sized, each kept as it is finished (a stopped run goes on
  where it stopped), and the loop over them both modes share
- :mod:`.optimise` — optimisation with a temporal loss (Ruder et al. 2016)
- :mod:`.fast`     — a trained network with its features and output blended along the flow
- :mod:`.write`    — the clip out, atomically: a video with the sound, GIF, WebP or a folder

PyAV and OpenCV are optional: ``pip install 'impasto[video]'``.
"""
