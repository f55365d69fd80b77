"""The benchmark suite (issue 7): ``make bench`` or ``python -m bench.run``.

Every benchmark runs each contender (ours and its reference) in a child
process of its own, so that times and peak memory do not bleed between them,
and reports the ratio of the two.  Corpora are generated, seeded and cached
under ``bench/corpora/``; work areas go to ``bench/out/`` on the same disk.
"""
