"""The Panorama wing: the XML API as data (xmlapi), its HTTP client, which targets the
configuration names (targets), and the audit of a target against a cluster's tags (audit)."""
