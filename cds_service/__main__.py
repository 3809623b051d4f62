"""`python -m cds_service` is the same as the `spine-cds` command."""

from cds_service.cli import main

main()
