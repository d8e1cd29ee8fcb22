"""zstream.sim"""
