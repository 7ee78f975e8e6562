"""Room and noise simulation: shoebox rooms and RIRs (``room``), mixing at a given
SNR/SIR with a joint anti-clipping gain (``mix``). The stage command is
``avse.bin.simulate``."""
