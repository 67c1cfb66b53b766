"""Panorama and PAN-OS firewalls through the XML API: message building, the HTTP client."""
