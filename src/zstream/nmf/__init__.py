"""zstream.nmf"""
