"""The pure rules in the middle: Services, tags and label selectors, the plan that takes
registered IP-tags to wanted ones, and the queue message schema. No I/O, no SDK."""
