"""Similar-case search (issue 18): an embedded index of image vectors and exact cosine search.

:mod:`.store` is the SQLite file (``LIBRARY.wbindex``), :mod:`.build` indexes a folder incrementally,
:mod:`.query` ranks the stored vectors against a query image. See docs/SEARCH.md.
"""
