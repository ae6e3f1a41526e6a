"""A simulated payment processor over HTTP: the seed design's processor as a service."""
