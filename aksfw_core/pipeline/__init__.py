"""The queue pipeline that joins the wings: the storage account, its queues and state,
coordination across instances, snapshots made from a cluster's Services, and the applier
that takes them to Panorama."""
