"""The listening page of an experiment: a static HTML folder to hear and compare systems.

Built by :mod:`avse.bin.listening_page` (the recipes' stage 8) from the score
directories that ``RESULTS.md`` is made of (:mod:`avse.scoring.entries`)::

    OUT/index.html                       links to every test set
    OUT/<test_set>/index.html            means table + the selected utterances
    OUT/<test_set>/<utt>/<row>.flac      16-bit clip of the input, reference or a system
    OUT/<test_set>/<utt>/<row>.png       its spectrogram
    OUT/.manifest.json                   what each file was made from (resuming)

The folder holds everything it links to, with relative links only, and no script or
style from the network: it can be zipped and opened anywhere. Modules: :mod:`.select`
(which utterances), :mod:`.sources` (the audio and scores behind each row),
:mod:`.media` (clips and spectrograms), :mod:`.html` (the pages) and :mod:`.build`
(the resumable build).
"""
