"""zstream.evaluate"""
