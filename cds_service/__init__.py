"""A CDS Hooks service advising on repeat spine MRI/CT in treated pyogenic spondylodiscitis."""

__version__ = "0.1.0"
