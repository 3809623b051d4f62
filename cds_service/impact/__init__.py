"""Impact before go-live: the rules replayed over a hospital's history (``spine-cds replay``).

A Bulk Data export is read as a stream (``export``), partitioned by patient on disk
(``partition``); every past spine MRI/CT order of a patient with an NVO episode is sent
through the service's own pipeline with the data on record at the order's time
(``asof``, ``replayer``), on local processes or a Dask cluster (``run``); the rows and
the summary (``summary``) are what a governance committee reads (``summary_text``,
``chart``). Nothing here is loaded by the server.
"""
