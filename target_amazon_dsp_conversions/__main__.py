"""`python -m target_amazon_dsp_conversions`."""

from target_amazon_dsp_conversions.launch import target

target()
