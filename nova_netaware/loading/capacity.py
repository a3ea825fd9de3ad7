"""Placement's capacity rule, written once (the OSC plugin and the local
stack's placement snapshot both use it)."""


def capacity(total, reserved=0.0, allocation_ratio=1.0):
    """What Nova may allocate of one resource class of one resource
    provider: ``(total - reserved) x allocation_ratio``.

    This is Placement's own rule (``placement.objects.inventory.Inventory.
    capacity``; an allocation fits while ``used + amount <= capacity``).
    Placement refuses ``reserved > total``; it is clamped to 0 here all the
    same. Use is the sum of the allocations against the inventory
    (Placement's ``/resource_providers/{uuid}/usages``), not computed here.
    """
    return max(float(total) - float(reserved), 0.0) * float(allocation_ratio)
