"""Data-set analysis: colour statistics, skin tone (ITA), hard images."""
