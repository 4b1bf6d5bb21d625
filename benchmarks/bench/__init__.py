"""``make bench``: encoder passes, encoder speed, arithmetic rate and memory, in one table.

1. A full k-shot sweep (folds x k) with the kit's flow (each image encoded once into
   the cache, then classifier -> prompts -> SAM decode from the cache) against a
   re-enactment of the authors' flow (``SamPredictor.set_image`` per image, twice per
   test image, again in every fold, D6), on the same images and backbone; then the
   kit's warm rerun. Passes are counted by a hook on the image encoder's forward.
   The full-size counts (Kvasir-SEG: 1000 images, k = 10/20/40/all) are analytic.
2. Encoder images/s per backbone, batch size and precision (random weights: same speed).
3. Achieved multiply-adds per second (MACs per image x images/s) beside this machine's
   measured matrix-multiply peak.
4. Peak resident memory: of the measured sweep, and of the classifier's k = all fit at
   full size (synthetic embeddings, no encoder needed); on a GPU, peak GPU memory.
5. The sweep after encoding: its stages per test image, a bf16 encoder's Dice change on
   real weights, and a finished ``make reproduce`` timed against the committed reference.
6. ``python -m selfprompt predict`` on one's own images: images/s end to end (cache cold)
   and after encoding (cache warm), the decoder's share of an image's time after
   encoding, and peak resident memory against the number of images.

Each row is written out as soon as it is measured (:class:`~.table.Table`), and a
measurement that raises becomes a ``failed`` row (:func:`~.table.measuring`): a borrowed
GPU's run cut short or broken in one place still leaves the rest.

The modules, in the order :func:`~.run.main` runs them:

- :mod:`.run`: ``main``, the order of the sections, and the child processes' entry;
- :mod:`.options`: the command line (``--help``) and its grid options' parsers;
- :mod:`.table`: the rows, written out one by one, and a failing measurement's row;
- :mod:`.common`: the models, data and child processes that the sections share;
- :mod:`.measure`: clocks around the encoder and ``torch.mm`` (images/s, MACs, peak);
- :mod:`.sweep`: section 1, the kit's flow against the authors';
- :mod:`.speed`: sections 2-4 per backbone, batch and precision, on the CPU and a GPU;
- :mod:`.end_to_end`: section 2's whole embedding step beside the encoder-only rate;
- :mod:`.memory`: section 4's peak resident memory, of encoding and of the k = all fit;
- :mod:`.stages`: section 5, the sweep's stages after encoding and the bf16 Dice change;
- :mod:`.predict`: section 6, ``predict``'s speed, decoder share and memory;
- :mod:`.sweep_timing`: section 5's finished ``make reproduce``, against the reference;
- :mod:`.compiled`: section 2's ``torch.compile`` rows, last because compiling is slow.

Defaults are small (minutes on 2 CPU cores); see ``--help`` and benchmarks/README.md
for the full size. Run as ``python -m benchmarks.bench``.
"""
