"""Test helpers shared across the suite: tiny wheels, a local package index, network denial."""
