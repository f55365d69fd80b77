"""Article and book metadata read from a delivery during ingest: JATS, ONIX 3, Dublin Core and a CSV manifest.

:class:`~preservation.metadata.analyser.MetadataAnalyser` is the content
analyser ingest runs; :mod:`preservation.metadata.items` writes the items it
finds and reads one back by DOI.  See ``docs/metadata.md``.
"""
