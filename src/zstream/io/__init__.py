"""zstream.io"""
