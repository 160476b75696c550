"""`python -m target_amazon_dsp_conversions`."""

from target_amazon_dsp_conversions.cli import main

main()
