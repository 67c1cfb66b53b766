"""The Panorama wing: the XML API, the client and its bounds, reads, syncing one cluster."""
