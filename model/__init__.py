"""llinet reference model: LLINet (Jia et al., ACM MM 2020) in PyTorch."""
