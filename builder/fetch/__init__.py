"""The fetch stage: download each clip's 10 s YouTube segment with yt-dlp (worker, error classes, quota fill, rate
limits, options).
"""
