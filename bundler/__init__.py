"""Build side of SpectraMind V50: lock, build, verify, simulate, push and probe Kaggle bundles.

Never shipped to Kaggle. Run as ``python -m bundler <command>``.
"""
