"""Kaldi-compatible job runners behind ``utils/run.pl``, ``utils/queue.pl`` and
``utils/slurm.pl`` (standard library only; no torch/numpy imports).

Modules:

* :mod:`avse.jobs.spec` -- the job array (``JOB=1:N log cmd...``), command quoting
  and the failure summary;
* :mod:`avse.jobs.local` -- parallel local execution (``run.pl``);
* :mod:`avse.jobs.schedconf` -- Kaldi ``queue.conf``-style option mapping;
* :mod:`avse.jobs.cluster` -- SGE and SLURM array-job submission and polling;
* :mod:`avse.jobs.runner` -- the command line (``python -m avse.jobs.runner``).
"""


class JobsError(Exception):
    """A usage, configuration or submission error; the message is shown to the user."""


__all__ = ["JobsError"]
