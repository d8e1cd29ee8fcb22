"""zstream.service"""
