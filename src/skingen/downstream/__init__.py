"""Downstream detector study: does augmentation help a skin-illness classifier? (``skingen downstream``,
``skingen augment``)."""
